// k6 load test for POST /v2/ingest. Run it through loadtest/run.sh, which installs a pinned k6,
// creates tenants and passes their keys; see loadtest/README.md for what each profile proves.
//
//   PROFILE=smoke|steady|burst|noisy-neighbour   which scenario set and thresholds (default smoke)
//   EDGE_URL        edge base URL (default http://127.0.0.1:8080; only loopback is ever targeted)
//   API_KEY         tenant key (the bursting tenant in noisy-neighbour)
//   API_KEY_2       second tenant's key (noisy-neighbour only: the steady bystander)
//   BATCH_SIZE      entries per request (default 100)
//   GZIP            1 to send Content-Encoding: gzip (default 0)
//   INVALID_EVERY   every Nth entry is made invalid on purpose (0 = never, the default), to
//                   exercise partial success; the accepted-count check accounts for them
//   RATE, PEAK_RATE, NOISY_RATE, STEADY_RATE   arrival rates (requests/s) for the profiles below
//
// Every duration below is bounded; no profile runs longer than about 70 s plus a short drain.

import http from 'k6/http';
import exec from 'k6/execution';
import { check } from 'k6';
import { Counter, Rate, Trend } from 'k6/metrics';

const PROFILE = __ENV.PROFILE || 'smoke';
const EDGE_URL = (__ENV.EDGE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const BATCH_SIZE = intEnv('BATCH_SIZE', 100);
const GZIP = __ENV.GZIP === '1' || __ENV.GZIP === 'true';
const INVALID_EVERY = intEnv('INVALID_EVERY', 0);
// Ids must be unique across runs too: the table deduplicates on (tenant, id), so a reused id would
// make a later count look short. RUN_ID is set by run.sh; the fallback is per VU, plus the VU id.
const RUN_ID = __ENV.RUN_ID || Date.now().toString(36);

// Custom metrics. Tags (scenario, tenant) make per-tenant thresholds possible.
const entriesSent = new Counter('ingest_entries_sent');
const entriesAccepted = new Counter('ingest_entries_accepted');
const entriesRejected = new Counter('ingest_entries_rejected');
const shed429 = new Counter('ingest_shed_429');
const shed503 = new Counter('ingest_shed_503');
const otherErrors = new Counter('ingest_other_errors');
const ok2xx = new Rate('ingest_2xx');
const shedWithRetryAfter = new Rate('ingest_shed_has_retry_after');
const acceptedPerRequest = new Trend('ingest_accepted_per_request');

function intEnv(name, dflt) {
  const v = __ENV[name];
  if (v === undefined || v === '') return dflt;
  const n = parseInt(v, 10);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative integer, got ${v}`);
  return n;
}

const RATE = intEnv('RATE', 50);
const PEAK_RATE = intEnv('PEAK_RATE', 400);
const NOISY_RATE = intEnv('NOISY_RATE', 300);
const STEADY_RATE = intEnv('STEADY_RATE', 20);

// ---------------------------------------------------------------------------------------------
// Profiles. Each is a complete `scenarios` + `thresholds` pair.
// ---------------------------------------------------------------------------------------------

const PROFILES = {
  // One VU for 10 s: the pipeline works end to end and every valid entry is accepted.
  smoke: {
    scenarios: {
      smoke: { executor: 'constant-vus', vus: 1, duration: '10s', gracefulStop: '5s', env: { TENANT_KEY: __ENV.API_KEY || '', TENANT_TAG: 'a' }, tags: { tenant: 'a' } },
    },
    thresholds: {
      checks: ['rate==1'],
      http_req_failed: ['rate<0.01'],
      'http_req_duration{scenario:smoke}': ['p(95)<500'],
      ingest_2xx: ['rate>0.99'],
      ingest_shed_429: ['count==0'],
      ingest_shed_503: ['count==0'],
      ingest_other_errors: ['count==0'],
      ...(INVALID_EVERY === 0 ? { ingest_entries_rejected: ['count==0'] } : {}),
    },
  },

  // A constant request rate for 60 s, well inside the defaults: latency and zero shedding at a
  // sustained load. RATE requests/s × BATCH_SIZE entries.
  steady: {
    scenarios: {
      steady: {
        executor: 'constant-arrival-rate',
        rate: RATE,
        timeUnit: '1s',
        duration: '60s',
        preAllocatedVUs: Math.max(5, Math.ceil(RATE / 5)),
        maxVUs: Math.max(20, RATE * 2),
        gracefulStop: '10s',
        env: { TENANT_KEY: __ENV.API_KEY || '', TENANT_TAG: 'a' },
        tags: { tenant: 'a' },
      },
    },
    thresholds: {
      http_req_failed: ['rate<0.01'],
      ingest_2xx: ['rate>0.99'],
      'http_req_duration{scenario:steady}': ['p(95)<500', 'p(99)<1000'],
      dropped_iterations: ['count<10'],
      ingest_other_errors: ['count==0'],
    },
  },

  // A spike from 10 to PEAK_RATE requests/s and back: the service sheds with explicit 429/503 and
  // Retry-After instead of timing out or failing, and recovers once the spike is over.
  burst: {
    scenarios: {
      burst: {
        executor: 'ramping-arrival-rate',
        startRate: 10,
        timeUnit: '1s',
        preAllocatedVUs: 20,
        maxVUs: Math.max(50, PEAK_RATE),
        stages: [
          { target: 10, duration: '10s' }, // warm
          { target: PEAK_RATE, duration: '5s' }, // spike
          { target: PEAK_RATE, duration: '15s' }, // hold
          { target: 10, duration: '5s' }, // fall
          { target: 10, duration: '15s' }, // recover
        ],
        gracefulStop: '10s',
        env: { TENANT_KEY: __ENV.API_KEY || '', TENANT_TAG: 'a' },
        tags: { tenant: 'a' },
      },
    },
    thresholds: {
      // Every answer is 200, 429 or 503 — never a 500, a timeout or a dropped connection.
      ingest_other_errors: ['count==0'],
      // Every shed answer tells the producer when to come back.
      ingest_shed_has_retry_after: ['rate==1'],
      // Shedding is fast: no request waits long even at the peak.
      'http_req_duration{scenario:burst}': ['p(99)<2000'],
      // Most of the load still gets through.
      ingest_2xx: ['rate>0.5'],
      // And once the spike is over the service is back to normal: no shedding, low latency.
      'ingest_2xx{phase:recovery}': ['rate>0.99'],
      'http_req_duration{phase:recovery}': ['p(95)<500'],
    },
  },

  // Tenant isolation. "noisy" (API_KEY) bursts far over its own limits; "steady" (API_KEY_2)
  // sends a modest constant load. The thresholds are on the steady tenant only: its success rate
  // and latency must not suffer from the neighbour. The noisy tenant must actually be shed
  // (ingest_shed_429 > 0), or the run proved nothing.
  'noisy-neighbour': {
    scenarios: {
      noisy: {
        executor: 'ramping-arrival-rate',
        startRate: 10,
        timeUnit: '1s',
        preAllocatedVUs: 20,
        maxVUs: Math.max(50, NOISY_RATE),
        stages: [
          { target: NOISY_RATE, duration: '10s' },
          { target: NOISY_RATE, duration: '30s' },
          { target: 10, duration: '5s' },
        ],
        gracefulStop: '10s',
        env: { TENANT_KEY: __ENV.API_KEY || '', TENANT_TAG: 'noisy' },
        tags: { tenant: 'noisy' },
      },
      steady: {
        executor: 'constant-arrival-rate',
        rate: STEADY_RATE,
        timeUnit: '1s',
        duration: '50s',
        preAllocatedVUs: Math.max(5, STEADY_RATE),
        maxVUs: Math.max(20, STEADY_RATE * 4),
        gracefulStop: '10s',
        env: { TENANT_KEY: __ENV.API_KEY_2 || '', TENANT_TAG: 'steady' },
        tags: { tenant: 'steady' },
      },
    },
    thresholds: {
      'ingest_2xx{tenant:steady}': ['rate>0.99'],
      'http_req_duration{tenant:steady}': ['p(95)<500'],
      'ingest_shed_429{tenant:steady}': ['count==0'],
      'ingest_shed_503{tenant:steady}': ['count==0'],
      'ingest_shed_429{tenant:noisy}': ['count>0'],
      'dropped_iterations{scenario:steady}': ['count<5'],
      ingest_other_errors: ['count==0'],
    },
  },
};

const selected = PROFILES[PROFILE];
if (!selected) throw new Error(`unknown PROFILE "${PROFILE}"; one of ${Object.keys(PROFILES).join(', ')}`);

export const options = {
  scenarios: selected.scenarios,
  thresholds: selected.thresholds,
  summaryTrendStats: ['avg', 'min', 'med', 'p(90)', 'p(95)', 'p(99)', 'max'],
};

export function setup() {
  const keys = PROFILE === 'noisy-neighbour' ? ['API_KEY', 'API_KEY_2'] : ['API_KEY'];
  for (const k of keys) if (!__ENV[k]) throw new Error(`${k} is not set (run.sh creates tenants and sets it)`);
  if (!/^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/.test(EDGE_URL)) {
    throw new Error(`EDGE_URL ${EDGE_URL} is not a loopback address; this load test only targets this machine`);
  }
  const r = http.get(`${EDGE_URL}/readyz`, { tags: { name: 'readyz' } });
  if (r.status !== 200) throw new Error(`edge at ${EDGE_URL} is not ready (GET /readyz → ${r.status}); start it with pnpm start`);
  return { startedAt: Date.now() };
}

// ---------------------------------------------------------------------------------------------
// Entries: valid per the wire v2 schema (DESIGN.md, services/normalizer/src/rules).
// ---------------------------------------------------------------------------------------------

const APPS = ['web', 'api', 'worker', 'billing'];
const LEVELS = ['debug', 'info', 'info', 'info', 'warn', 'error'];
const UNITS = [
  ['http_request_duration', 'ms'],
  ['queue_depth', ''],
  ['response_size', 'KiB'],
  ['cpu_usage', '%'],
  ['gc_pause', 'us'],
];
const HEALTH = ['ok', 'ok', 'ok', 'degraded', 'down'];
const SEVERITIES = ['info', 'warning', 'error', 'critical'];

function pick(a, i) {
  return a[i % a.length];
}

function makeEntry(id, i, now) {
  // Timestamps alternate between epoch ms and ISO 8601, both accepted.
  const timestamp = i % 2 === 0 ? now : new Date(now).toISOString();
  const app = pick(APPS, i);
  const labels = { env: 'loadtest', region: pick(['eu-west-1', 'us-east-1'], i) };
  switch (i % 5) {
    case 0:
      return { id, type: 'log', timestamp, app, source: 'k6', labels, data: { level: pick(LEVELS, i), message: `request ${id} handled`, path: '/checkout' } };
    case 1: {
      const [name, unit] = pick(UNITS, i);
      return { id, type: 'metric', timestamp, app, labels, data: { name, value: (i * 7.3) % 1000, unit, kind: 'gauge' } };
    }
    case 2:
      return { id, type: 'event', timestamp, app, labels, data: { name: 'order.placed', attributes: { items: (i % 9) + 1, currency: 'EUR' } } };
    case 3:
      return { id, type: 'health', timestamp, app, labels, data: { status: pick(HEALTH, i), check: 'db', latencyMs: i % 250 } };
    default:
      return {
        id,
        type: 'alert',
        timestamp,
        app,
        labels,
        data: { name: 'HighErrorRate', severity: pick(SEVERITIES, i), state: i % 3 === 0 ? 'resolved' : 'firing', summary: 'error ratio above 5%' },
      };
  }
}

/** An entry the normalizer rejects (metric value not a number → INGEST_ERR_ENTRY_VALUE). */
function makeInvalid(id, now) {
  return { id, type: 'metric', timestamp: now, data: { name: 'bad_metric', value: 'NaN' } };
}

function buildBatch(prefix, n, invalidEvery) {
  const now = Date.now();
  const entries = new Array(n);
  let invalid = 0;
  for (let i = 0; i < n; i++) {
    const id = `${prefix}-${i}`;
    if (invalidEvery > 0 && (i + 1) % invalidEvery === 0) {
      entries[i] = makeInvalid(id, now);
      invalid++;
    } else {
      entries[i] = makeEntry(id, i, now);
    }
  }
  return { entries, invalid };
}

// ---------------------------------------------------------------------------------------------
// The iteration: one batch, one POST.
// ---------------------------------------------------------------------------------------------

export default function () {
  const key = __ENV.TENANT_KEY || __ENV.API_KEY;
  const tags = { tenant: __ENV.TENANT_TAG || 'a' };
  // burst: the last 20 % of the scenario (10 s at 10 requests/s after the spike) is the recovery
  // phase, with thresholds of its own.
  if (PROFILE === 'burst') tags.phase = exec.scenario.progress > 0.8 ? 'recovery' : 'load';
  const prefix = `k6-${RUN_ID}-${exec.scenario.name}-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`;
  const { entries, invalid } = buildBatch(prefix, BATCH_SIZE, INVALID_EVERY);
  const body = JSON.stringify(entries);

  const params = {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    tags: { ...tags, name: 'POST /v2/ingest' },
    timeout: '30s',
  };
  if (GZIP) params.compression = 'gzip';

  const res = http.post(`${EDGE_URL}/v2/ingest`, body, params);
  entriesSent.add(entries.length, tags);

  const is2xx = res.status >= 200 && res.status < 300;
  ok2xx.add(is2xx, tags);

  if (res.status === 200) {
    let parsed;
    try {
      parsed = res.json();
    } catch (_e) {
      parsed = undefined;
    }
    const accepted = parsed && typeof parsed.accepted === 'number' ? parsed.accepted : -1;
    const rejected = parsed && Array.isArray(parsed.rejected) ? parsed.rejected : [];
    check(
      res,
      {
        'status is 200 (or an expected shed)': () => true,
        'accepted count is every valid entry': () => accepted === entries.length - invalid,
        'rejections are exactly the invalid entries': () => rejected.length === invalid,
      },
      tags,
    );
    if (accepted >= 0) {
      entriesAccepted.add(accepted, tags);
      acceptedPerRequest.add(accepted, tags);
    }
    if (rejected.length > 0) {
      for (const r of rejected) entriesRejected.add(1, { ...tags, code: String(r.code) });
    }
    return;
  }

  if (res.status === 429 || res.status === 503) {
    (res.status === 429 ? shed429 : shed503).add(1, tags);
    const hasRetryAfter = Number(res.headers['Retry-After']) >= 1;
    shedWithRetryAfter.add(hasRetryAfter, tags);
    // In smoke and steady no shedding is expected, so there a shed fails the `checks` threshold.
    const expectShed = PROFILE === 'burst' || PROFILE === 'noisy-neighbour';
    check(res, { 'shed answer has Retry-After': () => hasRetryAfter, 'status is 200 (or an expected shed)': () => expectShed }, tags);
    return;
  }

  otherErrors.add(1, { ...tags, status: String(res.status) });
  check(res, { 'status is 200 (or an expected shed)': () => false }, tags);
  if (exec.vu.iterationInScenario < 3) console.warn(`POST /v2/ingest → ${res.status} ${String(res.body).slice(0, 300)}`);
}

export function teardown(data) {
  const secs = ((Date.now() - data.startedAt) / 1000).toFixed(1);
  console.log(`profile ${PROFILE} finished after ${secs} s against ${EDGE_URL} (batch ${BATCH_SIZE}, gzip ${GZIP ? 'on' : 'off'}, run ${RUN_ID})`);
}

// The journey's load_test stage (plugins/journey/load_test.py runs it): the integration guide's k6 test (Phase 5.1)
// against the tenant's own key and users. Each iteration is a storefront page view: the user's recommendations,
// then (when the catalog has categories) the same user's shelf of one category, then the think time.
//
// Everything comes from the environment, so the key never appears on a command line:
//   LOAD_BASE_URL, LOAD_API_KEY, LOAD_USERS_FILE (JSON list of user ids), LOAD_CATEGORIES (JSON list),
//   LOAD_STAGES (JSON list of {duration, target}) or LOAD_VUS + LOAD_DURATION (constant load), LOAD_THINK_S, LOAD_COUNT.
import http from 'k6/http';
import { sleep } from 'k6';
import { Counter } from 'k6/metrics';

const users = JSON.parse(open(__ENV.LOAD_USERS_FILE));
const categories = JSON.parse(__ENV.LOAD_CATEGORIES || '[]');
const think = parseFloat(__ENV.LOAD_THINK_S || '1');
const count = parseInt(__ENV.LOAD_COUNT || '10', 10);
const url = `${__ENV.LOAD_BASE_URL}/api/v1/recommendations`;
const headers = { 'Content-Type': 'application/json', Authorization: `Bearer ${__ENV.LOAD_API_KEY}` };

// Errors by status: k6's summary has no per-status breakdown of its own. 0 is a request that got no answer.
const STATUSES = [0, 200, 400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 504];
const byStatus = {};
for (const status of STATUSES) byStatus[status] = new Counter(`status_${status}`);
const otherStatus = new Counter('status_other');
// The API's X-Cache header: whether the response cache answered.
const cacheHits = new Counter('cache_hits');
const cacheMisses = new Counter('cache_misses');

const load = __ENV.LOAD_STAGES
  ? { stages: JSON.parse(__ENV.LOAD_STAGES) }
  : { vus: parseInt(__ENV.LOAD_VUS, 10), duration: __ENV.LOAD_DURATION };

export const options = {
  ...load,
  discardResponseBodies: true,
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(50)', 'p(90)', 'p(95)', 'p(99)'],
  // Never-failing thresholds: they only make the summary carry the filtered and unfiltered latency apart.
  thresholds: {
    'http_req_duration{filtered:no}': ['max>=0'],
    'http_req_duration{filtered:yes}': ['max>=0'],
  },
};

function post(body, filtered) {
  const res = http.post(url, JSON.stringify(body), { headers, tags: { filtered } });
  (byStatus[res.status] || otherStatus).add(1);
  const cache = res.headers['X-Cache'];
  if (cache === 'hit') cacheHits.add(1);
  else if (cache === 'miss') cacheMisses.add(1);
}

export default function () {
  const i = Math.floor(Math.random() * users.length);
  post({ user_id: users[i], count }, 'no');
  if (categories.length > 0) {
    // One category per user, so a returning user asks for the same shelf again.
    post({ user_id: users[i], count, filters: { category: categories[i % categories.length] } }, 'yes');
  }
  sleep(think);
}

/**
 * The load generator of `npm run bench`, one process per run (so it never shares the stack's event
 * loop): `node dist/scripts/bench-load.js URL TOKEN SECONDS CONNECTIONS`. Runs autocannon as a
 * library and prints one JSON line: autocannon's own result plus `latency_exact`, the p50 and p99 of
 * the 2xx responses' latencies as autocannon measured them (fractional milliseconds). autocannon's
 * own percentiles come from a histogram of whole milliseconds, too coarse for a 2 ms hot path.
 */
import autocannon from 'autocannon';

const [url, token, seconds, connections] = process.argv.slice(2);
if (!url || !token || !seconds || !connections) {
  console.error('usage: node dist/scripts/bench-load.js URL TOKEN SECONDS CONNECTIONS');
  process.exit(2);
}

const latencies: number[] = [];
const instance = autocannon(
  { url, connections: Number(connections), duration: Number(seconds), timeout: 10, headers: { authorization: `Bearer ${token}` } },
  (error, result) => {
    if (error) {
      console.error(`autocannon failed: ${error.message}`);
      process.exit(1);
    }
    latencies.sort((a, b) => a - b);
    // Nearest rank.
    const percentile = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] : 0);
    const round = (ms: number) => Math.round(ms * 100) / 100;
    process.stdout.write(`${JSON.stringify({ ...result, latency_exact: { p50: round(percentile(50)), p99: round(percentile(99)), samples: latencies.length } })}\n`);
  },
);
instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTime: number) => {
  if (statusCode >= 200 && statusCode < 300) latencies.push(responseTime);
});

import type { Benchmark } from './lib/benchmark.js';
import { dataplane } from './dataplane.js';
import { policyLatency } from './policy-latency.js';
import { publication } from './publication.js';
import { scale } from './scale.js';
import { zeroLoss } from './zero-loss.js';

/** In the order `npm run bench` runs them. */
export const BENCHMARKS: readonly Benchmark[] = [dataplane, publication, policyLatency, scale, zeroLoss];

import type { Benchmark } from './lib/benchmark.js';
import { dataplane } from './dataplane.js';
import { dataplaneParts } from './dataplane-parts.js';
import { fleet } from './fleet.js';
import { haproxy } from './haproxy.js';
import { idleRace } from './idle-race.js';
import { instructions } from './instructions.js';
import { pathScale } from './path-scale.js';
import { peers } from './peers.js';
import { policyLatency } from './policy-latency.js';
import { publication } from './publication.js';
import { scale } from './scale.js';
import { tlsHandshake } from './tls-handshake.js';
import { trafficMemory } from './traffic-memory.js';
import { trafficPublication } from './traffic-publication.js';
import { websockets } from './websockets.js';
import { zeroLoss } from './zero-loss.js';

/** In the order `npm run bench` runs them. */
export const BENCHMARKS: readonly Benchmark[] = [dataplane, dataplaneParts, instructions, publication, policyLatency, scale, zeroLoss, idleRace, pathScale, tlsHandshake, websockets, haproxy, peers, trafficMemory, trafficPublication, fleet];

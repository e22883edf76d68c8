// Announce before kill on HAProxy routing nodes: the same test body as on
// nginx nodes (announce-before-kill.body.ts), in its own file so the two run
// side by side.
import { announceBeforeKill } from './announce-before-kill.body.js';
import { HAPROXY_RIG } from '../helpers/data-plane-rig.js';

announceBeforeKill(HAPROXY_RIG);

// Announce before kill on nginx routing nodes; the test body, shared with
// HAProxy nodes (announce-before-kill-haproxy.test.ts), is in announce-before-kill.body.ts.
import { announceBeforeKill } from './announce-before-kill.body.js';
import { NGINX_RIG } from '../helpers/data-plane-rig.js';

announceBeforeKill(NGINX_RIG);

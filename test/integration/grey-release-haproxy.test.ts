// Grey release on an HAProxy routing node: the same test body as on nginx
// nodes (grey-release.body.ts), in its own file so the two run side by side.
import { greyRelease } from './grey-release.body.js';
import { HAPROXY_RIG } from '../helpers/data-plane-rig.js';

greyRelease(HAPROXY_RIG);

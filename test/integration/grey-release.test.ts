// Grey release on an nginx routing node; the test body, shared with HAProxy
// nodes (grey-release-haproxy.test.ts), is in grey-release.body.ts.
import { greyRelease } from './grey-release.body.js';
import { NGINX_RIG } from '../helpers/data-plane-rig.js';

greyRelease(NGINX_RIG);

import { describe, expect, it } from 'vitest';
import { readRoutingLabels } from '../../agent/core/labels.js';

describe('readRoutingLabels', () => {
  it('leaves apps without edgeroute.vhosts unrouted', () => {
    expect(readRoutingLabels({ owner: 'zeus' })).toEqual({ ok: true, routed: false });
  });

  it('normalises host names and applies defaults', () => {
    const result = readRoutingLabels({ 'edgeroute.vhosts': ' B.Example.com, *.example.com ,b.example.com.' });
    expect(result).toEqual({
      ok: true,
      routed: true,
      value: {
        vhosts: ['*.example.com', 'b.example.com'],
        portIndex: 0,
        weight: 100,
        groups: [],
        app: null,
        version: 'stable',
        publishDelaySeconds: null,
        warmupSeconds: null,
        paths: ['/'],
        settings: null,
      },
    });
  });

  it('reads every label', () => {
    const result = readRoutingLabels({
      'edgeroute.vhosts': 'a.example.com',
      'edgeroute.portIndex': '2',
      'edgeroute.weight': '30',
      'edgeroute.group': 'edge-a',
      'edgeroute.app': 'checkout',
      'edgeroute.version': 'grey',
      'edgeroute.publishDelaySeconds': '30',
      'edgeroute.warmupSeconds': '2.5',
    });
    expect(result).toMatchObject({
      ok: true,
      value: { portIndex: 2, weight: 30, groups: ['edge-a'], app: 'checkout', version: 'grey', publishDelaySeconds: 30, warmupSeconds: 2.5 },
    });
  });

  it.each([
    ['a bad host name', { 'edgeroute.vhosts': 'a..example.com' }, 'invalid host name "a..example.com"'],
    ['a wildcard in the middle', { 'edgeroute.vhosts': 'a.*.example.com' }, 'invalid host name'],
    ['an empty list', { 'edgeroute.vhosts': ' , ' }, 'edgeroute.vhosts is empty'],
    ['a negative port index', { 'edgeroute.vhosts': 'a.com', 'edgeroute.portIndex': '-1' }, 'edgeroute.portIndex="-1"'],
    ['a word as port index', { 'edgeroute.vhosts': 'a.com', 'edgeroute.portIndex': 'http' }, 'is not a port index'],
    ['a zero weight', { 'edgeroute.vhosts': 'a.com', 'edgeroute.weight': '0' }, 'edgeroute.weight="0"'],
    ['a negative delay', { 'edgeroute.vhosts': 'a.com', 'edgeroute.publishDelaySeconds': '-5' }, 'edgeroute.publishDelaySeconds="-5"'],
    ['a warm-up in words', { 'edgeroute.vhosts': 'a.com', 'edgeroute.warmupSeconds': 'one minute' }, 'is not a number of seconds'],
    ['an empty group list', { 'edgeroute.vhosts': 'a.com', 'edgeroute.group': ' , ' }, 'edgeroute.group=" , "'],
    ['a bad group among several', { 'edgeroute.vhosts': 'a.com', 'edgeroute.group': 'a, b c' }, 'has "b c", which is not a valid group name'],
    ['a version with spaces', { 'edgeroute.vhosts': 'a.com', 'edgeroute.version': 'v 2' }, 'edgeroute.version="v 2"'],
  ])('refuses %s with a message naming it', (_title, labels, message) => {
    const result = readRoutingLabels(labels);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toContain(message);
  });

  it('reads a comma list of groups', () => {
    const result = readRoutingLabels({ 'edgeroute.vhosts': 'a.com', 'edgeroute.group': ' internal,external ,internal' });
    expect(result).toMatchObject({ ok: true, value: { groups: ['external', 'internal'] } });
  });
});

// Policies, drain marks and health records come from Redis, routes from the
// agent, tables from a snapshot file: all of it is data. Nothing in the
// plugin or the agent may turn text into code, so no value an operator (or an
// attacker with Redis access) writes can run. This reads the sources and
// fails on any construct that compiles or loads code at run time.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

function files(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return files(path, ext);
    return path.endsWith(ext) ? [path] : [];
  });
}

/** Lines matching `pattern`, as "file:line: text", comments left out. */
function offending(paths: readonly string[], pattern: RegExp, comment: RegExp): string[] {
  const found: string[] = [];
  for (const path of paths) {
    readFileSync(path, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        const code = line.replace(comment, '');
        if (pattern.test(code)) found.push(`${relative(ROOT, path)}:${i + 1}: ${line.trim()}`);
      });
  }
  return found;
}

describe('data is never run as code', () => {
  it('the Lua plugin never loads code from a string or a file it did not ship', () => {
    const lua = files(join(ROOT, 'lua'), '.lua');
    expect(lua.length).toBeGreaterThan(10);
    // require with anything but a literal module name could load a path taken from data.
    const found = offending(lua, /(^|[^.:\w])(loadstring|loadfile|dofile|setfenv|load)\s*\(|\brequire\s*\(?\s*[^"'\s(,]/, /--.*$/);
    // The one exception: policy/unrolled.lua writes a policy out as Lua from numbers and its own
    // identifiers (policy_spec.lua checks its source has no string literal), and loads it as text
    // into an empty environment.
    const unrolled = /^lua\/edgeroute\/policy\/unrolled\.lua:\d+: local chunk, err = load\(source, "=edgeroute\.policy\.unrolled", "t", \{\}\)$/;
    expect(found.filter((line) => unrolled.test(line))).toHaveLength(1);
    expect(found.filter((line) => !unrolled.test(line))).toEqual([]);
  });

  it('the agent never evaluates text: no eval, Function, vm or computed import', () => {
    const ts = files(join(ROOT, 'agent'), '.ts');
    expect(ts.length).toBeGreaterThan(30);
    const found = offending(ts, /(^|[^.\w])eval\s*\(|\bnew\s+Function\s*\(|['"]node:vm['"]|\bimport\s*\(\s*[^'"\s]/, /\/\/.*$/);
    expect(found).toEqual([]);
  });

  it('nginx.conf runs only the shipped Lua files', () => {
    const template = readFileSync(join(ROOT, 'templates', 'nginx.conf.hbs'), 'utf8');
    // *_by_lua_block bodies only call the plugin's modules (by require, or found in package.loaded where
    // init_by_lua's require left them); no *_by_lua_file from a configurable path.
    expect(template).not.toMatch(/_by_lua_file/);
    const blocks = template.match(/_by_lua_block\s*\{[^}]*\}/g) ?? [];
    expect(blocks.length).toBeGreaterThan(4);
    for (const block of blocks) {
      expect(block).toMatch(/require\s*\(?\s*"edgeroute\.[a-z_]+"|package\.loaded\["edgeroute\.[a-z_]+"\]/);
    }
  });
});

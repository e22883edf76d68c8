/**
 * A Map that also knows the keys of each value: the adapter's model of
 * hosts.map and tcp-ports.map (key → backend) answers "which keys point at
 * this backend" without a pass over 10,000 entries for each app it looks at.
 */
export class IndexedMap extends Map<string, string> {
  private readonly byValue = new Map<string, Set<string>>();

  static from(entries: Iterable<readonly [string, string]>): IndexedMap {
    const map = new IndexedMap();
    for (const [key, value] of entries) map.set(key, value);
    return map;
  }

  override set(key: string, value: string): this {
    const old = super.get(key);
    if (old !== undefined) this.unindex(key, old);
    super.set(key, value);
    let keys = this.byValue.get(value);
    if (!keys) this.byValue.set(value, (keys = new Set()));
    keys.add(key);
    return this;
  }

  override delete(key: string): boolean {
    const old = super.get(key);
    if (old === undefined) return false;
    this.unindex(key, old);
    return super.delete(key);
  }

  override clear(): void {
    this.byValue.clear();
    super.clear();
  }

  /** The keys whose value is `value`. */
  keysOf(value: string): ReadonlySet<string> {
    return this.byValue.get(value) ?? NONE;
  }

  private unindex(key: string, value: string): void {
    const keys = this.byValue.get(value);
    keys?.delete(key);
    if (keys?.size === 0) this.byValue.delete(value);
  }
}

const NONE: ReadonlySet<string> = new Set();

/**
 * Content hashes for routing-table versions. The plugin only compares them
 * for equality, so a fast non-cryptographic 53-bit hash (cyrb53) is enough
 * and keeps the core free of node:crypto.
 */

export function hashString(text: string, seed = 0): string {
  const [high, low] = hashParts(text, seed);
  return (4294967296 * high + low).toString(16).padStart(14, '0');
}

/** cyrb53 as two unsigned parts: the high 21 bits and the low 32 bits. */
export function hashParts(text: string, seed = 0): [number, number] {
  let h1 = 0xdeadbeef ^ seed;
  let h2 = 0x41c6ce57 ^ seed;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return [(2097151 & h2) >>> 0, h1 >>> 0];
}

/**
 * cyrb53 fed piece by piece, for hashing structures without building their
 * text. Pieces are separated by a byte that cannot occur in them by accident.
 */
export class StreamingHash {
  private h1 = 0xdeadbeef;
  private h2 = 0x41c6ce57;

  add(piece: string | number): this {
    const text = typeof piece === 'number' ? String(piece) : piece;
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ ch, 2654435761);
      h2 = Math.imul(h2 ^ ch, 1597334677);
    }
    // Separator, so ["ab", "c"] and ["a", "bc"] differ.
    h1 = Math.imul(h1 ^ 0x1f, 2654435761);
    h2 = Math.imul(h2 ^ 0x1f, 1597334677);
    this.h1 = h1;
    this.h2 = h2;
    return this;
  }

  hex(): string {
    let h1 = this.h1;
    let h2 = this.h2;
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(16).padStart(14, '0');
  }
}

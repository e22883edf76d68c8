/** The certificates a data plane serves by SNI, and what hands them to it (nginx's admin endpoint, HAProxy's runtime API). */

/** The whole set the data plane serves; it replaces the previous one. */
export interface CertSetBody {
  readonly version: string;
  readonly certs: ReadonlyArray<{ readonly id: string; readonly names: readonly string[]; readonly cert_pem: string; readonly key_pem: string }>;
}

export interface CertTarget {
  /** "nginx", "HAProxy": for the log. */
  readonly label: string;
  /** The version of the set the data plane holds whole; null when it holds none (a fresh nginx, a reloaded HAProxy). */
  version(): Promise<string | null>;
  /** Makes the data plane serve `set`, and only it; throws with the data plane's reason (never key material). */
  replace(set: CertSetBody): Promise<void>;
}

/** PostgreSQL LSNs ("16/B374D848") as comparable numbers; null for anything else. */
export function parseLsn(lsn: string | null | undefined): bigint | null {
  const m = lsn ? /^([0-9A-Fa-f]+)\/([0-9A-Fa-f]+)$/.exec(lsn) : null;
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : null;
}

/** True when `a` is at or past `b`; false when either cannot be read. */
export function lsnAtOrAfter(a: string | null | undefined, b: string | null | undefined): boolean {
  const x = parseLsn(a);
  const y = parseLsn(b);
  return x !== null && y !== null && x >= y;
}

import type { TableKey } from '../records/index.js';
import type { CatalogObject, CatalogState } from './catalog-changes.js';
import { byCodeUnit } from '../text-order.js';

/**
 * One named change to the system catalogs, as an operator reads it. `unidentified` is the
 * verdict's (catalog-verdict.ts): catalogs were written, but no lasting object change names it.
 */
export interface CatalogChange {
  readonly action: 'created' | 'dropped' | 'altered' | 'unidentified';
  readonly objectType: string;
  readonly identity: string;
  /** The catalog the object lives in (pg_trigger, pg_proc, ...). */
  readonly catalog: string;
  readonly table?: TableKey;
  readonly detail: string;
  /** The object's key in the catalog state (`catalog/objid/subid`); none for `unidentified`. */
  readonly key?: string;
}

/**
 * Every object created, dropped or altered between two reads of the same transaction.
 * Objects of the session's temp namespace (and everything belonging to a temp relation)
 * are left out: they die with the session. See temporaryObjectsChanged for the verdict.
 */
export function diffCatalogState(before: CatalogState, after: CatalogState): CatalogChange[] {
  const changes: CatalogChange[] = [];
  for (const [key, was] of before.objects) {
    const now = after.objects.get(key);
    if (!now) {
      if (!was.temp) changes.push(change('dropped', was, `${was.objectType} ${was.identity} dropped`));
    } else if (!now.temp && (now.hash !== was.hash || now.identity !== was.identity)) {
      changes.push(change('altered', now, describeAlteration(was, now)));
    }
  }
  for (const [key, now] of after.objects) {
    if (!before.objects.has(key) && !now.temp) changes.push(change('created', now, describeCreation(now)));
  }
  return changes.sort(
    (a, b) => byCodeUnit(a.table ?? '', b.table ?? '') || byCodeUnit(a.catalog, b.catalog) || byCodeUnit(a.identity, b.identity),
  );
}

/** Whether anything in the session's own temp namespace appeared, vanished or changed. */
export function temporaryObjectsChanged(before: CatalogState, after: CatalogState): boolean {
  const temp = (s: CatalogState): Map<string, string> => new Map([...s.objects.values()].filter((o) => o.temp).map((o) => [o.key, o.hash]));
  const [b, a] = [temp(before), temp(after)];
  return b.size !== a.size || [...b].some(([key, hash]) => a.get(key) !== hash);
}

/** Relations whose relfilenode moved (TRUNCATE, rewrites), including toast tables and indexes. */
export function storageChanges(before: CatalogState, after: CatalogState): number {
  let moved = 0;
  for (const [oid, filenode] of after.storage) {
    const was = before.storage.get(oid);
    if (was !== undefined && was !== filenode) moved++;
  }
  return moved;
}

function change(action: CatalogChange['action'], o: CatalogObject, detail: string): CatalogChange {
  return {
    action,
    objectType: o.objectType,
    identity: o.identity,
    catalog: o.catalog,
    ...(o.table ? { table: o.table } : {}),
    detail,
    key: o.key,
  };
}

const TRIGGER_STATES: Readonly<Record<string, string>> = {
  O: 'enabled',
  D: 'disabled',
  R: 'enabled for replica sessions only',
  A: 'enabled always',
};

function describeCreation(o: CatalogObject): string {
  const notes: string[] = [];
  if (o.facets.securityDefiner === true) notes.push('SECURITY DEFINER');
  if (o.facets.enabled === 'D') notes.push('disabled');
  if (o.catalog === 'pg_description') notes.push(`"${short(String(o.facets.text))}"`);
  return `${o.objectType} ${o.identity} created${notes.length ? ` (${notes.join(', ')})` : ''}`;
}

/** One clause per facet that differs, in words where the facet matters for blame. */
function describeAlteration(was: CatalogObject, now: CatalogObject): string {
  const what = `${now.objectType} ${now.identity}`;
  const clauses: string[] = [];
  if (was.identity !== now.identity) clauses.push(`renamed from ${was.identity}`);
  const keys = new Set([...Object.keys(was.facets), ...Object.keys(now.facets)]);
  for (const key of [...keys].sort()) {
    const [b, a] = [was.facets[key] ?? null, now.facets[key] ?? null];
    if (JSON.stringify(b) === JSON.stringify(a)) continue;
    clauses.push(describeFacet(key, b, a, now));
  }
  return `${what}: ${clauses.join('; ')}`;
}

function describeFacet(key: string, b: unknown, a: unknown, o: CatalogObject): string {
  if (key === 'enabled' && o.catalog === 'pg_trigger') {
    const enforces = o.facets.enforces ? ` (foreign key ${String(o.facets.enforces)})` : '';
    return `trigger ${TRIGGER_STATES[String(a)] ?? String(a)}${enforces}, was ${TRIGGER_STATES[String(b)] ?? String(b)}`;
  }
  if (key === 'acl') return `privileges changed: ${describeAcl(asList(b), asList(a))}`;
  if (key === 'owner') return `owner changed from ${String(b)} to ${String(a)}`;
  if (key === 'rowSecurity') return `row level security ${a ? 'enabled' : 'disabled'}`;
  if (key === 'forceRowSecurity') return `row level security ${a ? 'forced' : 'no longer forced'} for the owner`;
  if (key === 'securityDefiner') return a ? 'now SECURITY DEFINER' : 'no longer SECURITY DEFINER';
  const digest = DIGESTS[key];
  if (digest || (key === 'definition' && (isDigest(b) || isDigest(a)))) {
    return `${digest ?? 'definition'} ${b === null ? 'set' : a === null ? 'removed' : 'changed'}`;
  }
  return `${key} ${show(b)} -> ${show(a)}`;
}

/**
 * Facets kept as an md5 of the definition, not its text (catalog-state-sql.ts: the text could
 * only be printed by opening the table, which the script's lock may forbid). They say that
 * the definition changed; the statement that changed it is in the run's log.
 */
const DIGESTS: Readonly<Record<string, string>> = {
  body: 'definition',
  view: 'definition',
  digest: 'definition',
  index: 'index definition',
  default: 'default',
  partitionKey: 'partition key',
  partitionBound: 'partition bound',
  using: 'USING expression',
  withCheck: 'WITH CHECK expression',
};

function isDigest(v: unknown): boolean {
  return typeof v === 'string' && /^[0-9a-f]{32}$/.test(v);
}

/**
 * aclitem texts are `grantee=privileges/grantor`, an empty grantee meaning PUBLIC. Compared
 * per grantee and grantor, so GRANT CREATE reads as `granted PUBLIC=C/owner`, not as one
 * item replaced by another.
 */
function describeAcl(before: readonly string[], after: readonly string[]): string {
  const [b, a] = [aclMap(before), aclMap(after)];
  const granted: string[] = [];
  const revoked: string[] = [];
  for (const who of new Set([...b.keys(), ...a.keys()])) {
    const [was, now] = [b.get(who) ?? [], a.get(who) ?? []];
    const [grantee, grantor] = who.split('/');
    const added = [...now].filter((p) => !was.includes(p)).join('');
    const removed = [...was].filter((p) => !now.includes(p)).join('');
    if (added) granted.push(`${grantee}=${added}/${grantor}`);
    if (removed) revoked.push(`${grantee}=${removed}/${grantor}`);
  }
  return [granted.length ? `granted ${granted.join(', ')}` : '', revoked.length ? `revoked ${revoked.join(', ')}` : '']
    .filter(Boolean)
    .join('; ');
}

/** `grantee/grantor` -> privilege letters, `a*` for one held WITH GRANT OPTION. */
function aclMap(items: readonly string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const item of items) {
    const match = /^(.*)=([^/]*)\/(.*)$/.exec(item);
    if (!match) continue;
    map.set(`${match[1] || 'PUBLIC'}/${match[3]}`, match[2]!.match(/\w\*?/g) ?? []);
  }
  return map;
}

function asList(v: unknown): string[] {
  return Array.isArray(v) ? v.map(String) : [];
}

function show(v: unknown): string {
  return v === null ? '(none)' : short(typeof v === 'string' ? v : JSON.stringify(v));
}

function short(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

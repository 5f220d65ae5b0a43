/**
 * How this process started: from the V8 start-up snapshot (src/startup-snapshot.ts) or by
 * loading the bundle's modules. `--verbose` says which, for "why is this slow here?".
 */
let fromSnapshot = false;

export function markStartedFromSnapshot(): void {
  fromSnapshot = true;
}

export function startedFrom(): 'snapshot' | 'modules' {
  return fromSnapshot ? 'snapshot' : 'modules';
}

/** The typed model of what the audit log stores. It imports nothing from safe-run: everything else builds on it. */
export * from './table.js';
export * from './findings.js';
export * from './intent.js';
export * from './run.js';
export * from './exec.js';
export * from './restore.js';
export * from './pitr.js';
export * from './pitr-restore.js';
export * from './prune.js';
export * from './key.js';
export * from './ledger.js';
export * from './ack.js';
export * from './record.js';

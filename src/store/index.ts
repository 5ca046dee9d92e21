export { openSqliteStore, SqliteStore } from './sqlite.ts';
export * from './types.ts';

/**
 * The migration contract's variables: the settings a migration may use as `{{name}}` or `-- if:name`, and the
 * interval rule their values follow. One definition, read by the migration file parser (lib/migrations/file.ts)
 * and by the settings (lib/settings.ts), which validate and pass them. No imports: the parser runs inside the
 * serialized migrations hook.
 */

/** A PostgreSQL interval as the migration contract accepts it: a number and one unit, e.g. `7 days`. */
export const INTERVAL_PATTERN = /^\d+\s+(microsecond|millisecond|second|minute|hour|day|week|month|year)s?$/;

/** Settings a migration may use as `{{name}}` or `-- if:name`. All are PostgreSQL intervals. */
export const MIGRATION_VARIABLES = ["ohlcvChunkInterval", "tickChunkInterval", "compressAfter", "tickRetention", "caggRefreshInterval"] as const;
export type MigrationVariable = (typeof MIGRATION_VARIABLES)[number];

/** Variables that may be empty (meaning "no policy"); the others must be set. */
export const OPTIONAL_VARIABLES: readonly MigrationVariable[] = ["tickRetention"];

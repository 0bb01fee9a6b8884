/**
 * Imported first by every benchmark: its stdout ends with one JSON object that scripts read, so the
 * process's logs (and those of any gateway process it starts) go to stderr. It must run before
 * src/log.ts is evaluated, which ES module order guarantees when it is the first import.
 */
process.env['LOG_DESTINATION'] ??= 'stderr';

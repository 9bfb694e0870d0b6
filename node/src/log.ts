// One structured logger factory for every process of the node: JSON lines on stdout (or a given
// stream), each line tagged with the node id so lines from several nodes can be interleaved and still
// attributed. Child loggers add a component name; nothing else about log shape lives elsewhere.
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** Identity of this node in the cluster; every line carries it as `node`. */
  nodeId: string;
  /** Defaults to LOG_LEVEL from the environment, else 'info'. */
  level?: LevelWithSilent;
  /** Where the JSON lines go; stdout when absent (tests pass a collecting stream). */
  destination?: DestinationStream;
}

const LEVELS: readonly string[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function levelFromEnv(): LevelWithSilent {
  const fromEnv = process.env.LOG_LEVEL?.toLowerCase();
  return fromEnv !== undefined && LEVELS.includes(fromEnv) ? (fromEnv as LevelWithSilent) : 'info';
}

export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: opts.level ?? levelFromEnv(),
    base: { pid: process.pid, node: opts.nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names instead of numbers: the lines are read by people as often as by machines.
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** A logger that drops everything, for tools and tests that must not write to stdout. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

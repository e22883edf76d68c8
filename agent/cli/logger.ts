/** The root logger: JSON lines on stdout, secrets redacted. */
import { pino, type DestinationStream, type Logger } from 'pino';

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { name: 'edgeroute' },
      redact: { paths: ['*.password', '*.authorization', 'adminToken', '*.adminToken'], censor: '***' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

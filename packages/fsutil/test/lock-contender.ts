/**
 * One of several processes racing for the lock file named in argv[2]: prints "ready", tries once
 * when a line arrives on stdin, prints "won" or "refused", and holds what it won until stdin closes.
 */
import { createInterface } from 'node:readline';
import { acquireLockFile, LockHeldError, type HeldLock } from '../src/lock-file.ts';

const file = process.argv[2];
if (!file) throw new Error('usage: lock-contender <lock file>');
let held: HeldLock | undefined;
const lines = createInterface({ input: process.stdin });
lines.once('line', () => {
  acquireLockFile(file).then(
    (lock) => {
      held = lock;
      process.stdout.write('won\n');
    },
    (err: unknown) => {
      process.stdout.write(err instanceof LockHeldError ? 'refused\n' : `error ${String(err)}\n`);
    },
  );
});
lines.once('close', () => {
  void (held?.release() ?? Promise.resolve()).then(() => process.exit(0));
});
process.stdout.write('ready\n');

export { fsyncDir, writeFileAtomic } from './atomic-write.ts';
export type { AtomicWriteOptions } from './atomic-write.ts';
export { acquireLockFile, LockHeldError } from './lock-file.ts';
export type { HeldLock, LockFileOptions } from './lock-file.ts';
export { isErrno } from './errno.ts';

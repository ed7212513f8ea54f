export { FairBudget } from './fair-budget.ts';
export type { BudgetLimits, AcquireResult, ResizeResult, RefusalReason, Lease, BudgetSnapshot } from './fair-budget.ts';
export { retryAfterSeconds } from './retry-after.ts';
export { backoffMs } from './backoff.ts';
export type { BackoffOptions } from './backoff.ts';

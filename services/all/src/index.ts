export { buildAll } from './app.ts';
export type { AllOptions, AllRoles } from './app.ts';

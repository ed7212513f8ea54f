#!/usr/bin/env node
// Runs the TypeScript entry in this same process with tsx loaded: no build step, and Ctrl-C
// reaches the CLI itself (a replay in progress cancels after its current chunk).
import { register } from 'tsx/esm/api';
register();
await import('../src/main.ts');

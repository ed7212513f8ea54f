#!/usr/bin/env node
// Runs the TypeScript entry in this same process with tsx loaded, so signals (SIGTERM for a
// draining stop) reach the agent itself rather than a wrapper.
import { register } from 'tsx/esm/api';
register();
await import('../src/agent/main.ts');

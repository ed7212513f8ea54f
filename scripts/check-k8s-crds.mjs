// The custom resources in the rendered deploy/k8s (JSON array on stdin) against their CRDs' schemas,
// as published on npm by kubernetes-models (generated from the operators' CRDs). kubeconform has
// no schema for them offline; scripts/check-k8s.sh runs this for the kinds it skips.
// Types, required fields and enums are checked; unknown fields are not (the CRD schemas allow them).
import { readFileSync } from 'node:fs';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';

const MODELS = { 'monitoring.coreos.com/v1/PodMonitor': PodMonitor };

const docs = JSON.parse(readFileSync(0, 'utf8'));
let checked = 0;
let bad = 0;
for (const d of docs) {
  const Model = MODELS[`${d.apiVersion}/${d.kind}`];
  if (!Model) continue;
  try {
    new Model(d).validate();
    checked++;
  } catch (e) {
    console.error(`check-k8s: ${d.kind} ${d.metadata?.name}: ${e.message}`);
    bad++;
  }
}
console.log(`check-k8s: custom resources against their CRD schemas: ${checked} valid, ${bad} invalid`);
process.exit(bad > 0 ? 1 : 0);

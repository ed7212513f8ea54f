import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/**
 * The .proto definitions under packages/protocols/proto, loaded with protobufjs: the OTLP files and
 * google/rpc/status.proto as published (from the opentelemetry-proto and proto-google-common-protos
 * artifacts), and the Prometheus and Loki messages as their specifications define them.
 */
const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));

const roots = new Map<string, protobuf.Root>();

function root(files: readonly string[]): protobuf.Root {
  const key = files.join(',');
  let r = roots.get(key);
  if (r === undefined) {
    r = new protobuf.Root();
    // Imports are relative to the proto folder, as protoc's -I would make them. google/protobuf/*
    // come from protobufjs's bundled copies.
    r.resolvePath = (_origin, target) => join(PROTO_DIR, target);
    r.loadSync([...files]);
    r.resolveAll();
    roots.set(key, r);
  }
  return r;
}

export function protoType(files: readonly string[], name: string): protobuf.Type {
  return root(files).lookupType(name);
}

export type { Type as ProtoType } from 'protobufjs';

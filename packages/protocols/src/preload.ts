import { OTLP_TYPES } from './otlp/decode.ts';
import { protoType } from './proto.ts';

/**
 * Loads every .proto definition now (synchronous file reads), so that no request pays for it and
 * a missing or broken definition fails the service at start, not a producer's first request.
 */
export function preloadProtocolDefinitions(): void {
  for (const load of Object.values(OTLP_TYPES)) load();
  protoType(['loki/push.proto'], 'logproto.PushRequest');
  protoType(['prometheus/remote.proto'], 'prometheus.WriteRequest');
}

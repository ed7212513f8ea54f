export { isIpOrCidr, loadConfig } from './config.ts';
export type { IngestConfig, LoggingConfig, TracingConfig, BackendConfig, EdgeConfig, EdgeTlsConfig, ServerTlsConfig, CutoverConfig, TrustedHopsConfig, NormalizerConfig, SinkConfig } from './config.ts';
export { ConfigError, EnvReader, parseByteSize } from './env.ts';
export type { Env } from './env.ts';
export { withConfigFile, withRunningEndpoints, takeConfigFlag, endpointsText, ENDPOINTS_FILE } from './config-file.ts';

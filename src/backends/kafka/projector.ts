// `kafkaProjector` lives in ./projector/ (one job per file); this module keeps its import path.
export { kafkaProjector } from './projector/projector.ts';
export type { KafkaProjector, KafkaProjectorOptions, ProjectorOutput, ProjectorRecord } from './projector/options.ts';

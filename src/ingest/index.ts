export { parseReadings } from "./parse.ts";
export { type IngestServer, startIngestServer } from "./server.ts";

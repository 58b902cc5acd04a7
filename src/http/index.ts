export { isAuthorized } from "./auth.ts";
export { type GuardOptions, guardRequest, hostOf, jsonError, requestPath } from "./guard.ts";

export { isAuthorized } from "./auth.ts";
export { type AuthCheck, AuthLimiter, type AuthLimitOptions, clientKey } from "./auth-limit.ts";
export { type GuardOptions, guardRequest, hostOf, jsonError, requestPath } from "./guard.ts";
export { type Handlers, type Listener, ListenerPool, serveOnce } from "./listeners.ts";

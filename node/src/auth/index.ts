export { loadTokens, parseTokens, TokenRegistry, TokenConfigError, SCOPES, type ApiToken, type Scope } from './tokens.js';
export { RateLimiter } from './rate-limit.js';
export { identify, requireScope, requireToken, tokenOf } from './middleware.js';
